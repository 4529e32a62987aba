#define _GNU_SOURCE
#include "kernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

// One job at a time: part 0 runs on the caller, part w + 1 on worker w. Workers spin on the job
// counter for a while after each job, since the next one (the next layer) usually follows within
// microseconds and a parked thread takes tens of microseconds to wake on a virtual machine; then
// they sleep on a condition variable.
enum { MAX_WORKERS = 63, SPINS = 1 << 14 };

static struct {
    _Atomic unsigned job;
    _Atomic int remaining, busy, sleeping;
    precis_part_fn fn;
    void *context;
    int parts, workers;
    pthread_mutex_t lock;
    pthread_cond_t wake;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static inline void relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

static void *worker(void *arg) {
    int part = (int)(intptr_t)arg + 1;
    unsigned seen = 0;
    for (;;) {
        unsigned job = atomic_load_explicit(&pool.job, memory_order_acquire);
        for (int i = 0; job == seen && i < SPINS; i++) {
            relax();
            job = atomic_load_explicit(&pool.job, memory_order_acquire);
        }
        if (job == seen) {
            pthread_mutex_lock(&pool.lock);
            // Sequentially consistent with the caller's job++ and load of `sleeping`: either it sees
            // this thread asleep and wakes it, or this thread sees the new job.
            atomic_fetch_add(&pool.sleeping, 1);
            while ((job = atomic_load(&pool.job)) == seen)
                pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleeping, 1);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = job;
        if (part < pool.parts) pool.fn(pool.context, part);
        atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_release);
    }
    return NULL;
}

static pthread_once_t started = PTHREAD_ONCE_INIT;

static void start(void) {
    // The cores this process may run on (fewer than the machine has under `taskset`).
    cpu_set_t set;
    long cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
    int workers = cores > 1 ? (int)(cores - 1 < MAX_WORKERS ? cores - 1 : MAX_WORKERS) : 0;
    for (int w = 0; w < workers; w++) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)(intptr_t)w) != 0) break;
        pthread_detach(t);
        pool.workers = w + 1;
    }
}

int precis_parallel(int parts, precis_part_fn fn, void *context) {
    pthread_once(&started, start);
    int expected = 0;
    if (parts > pool.workers + 1 || !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) return 0;
    pool.fn = fn;
    pool.context = context;
    pool.parts = parts;
    atomic_store_explicit(&pool.remaining, pool.workers, memory_order_relaxed);
    atomic_fetch_add(&pool.job, 1);
    if (atomic_load(&pool.sleeping) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    fn(context, 0);
    while (atomic_load_explicit(&pool.remaining, memory_order_acquire) > 0) relax();
    atomic_store(&pool.busy, 0);
    return 1;
}
