import Foundation
import PrecisCore
import PrecisWorkflows

extension Train {
    /// Shows a run's progress: a progress line while it trains and, with `log`, a line per epoch
    /// (`test` naming what the test accuracy measures, when it needs saying).
    func progressEvents(_ progress: ProgressLine, epochs: Int, log: Bool, test: String = "test") -> (
        TrainingEvent
    ) -> Void {
        { event in
            switch event {
            case let .iteration(epoch, index, perEpoch, loss):
                progress.update(
                    "epoch \(epoch)/\(epochs)", done: (epoch - 1) * perEpoch + index, total: epochs * perEpoch,
                    unit: "it", suffix: String(format: "loss %.4f", loss))
            case let .epochEnd(epoch, loss, train, accuracy, seconds):
                progress.clear()
                if log {
                    print(
                        String(
                            format: "epoch %2d/%d  loss %.4f  train %@  %@ %@  %.1f s", epoch, epochs, loss,
                            percentText(train), test, percentText(accuracy), seconds))
                    fflush(stdout)
                }
            }
        }
    }
}
