/// Which images of a split a run uses.
public enum ImageSelection: Equatable, Sendable {
    /// Every image.
    case all
    /// A seeded sample of `count` images, stratified by class: each class contributes in
    /// proportion to its share of the split (largest remainders first), its images drawn at random.
    case stratified(count: Int, seed: UInt64)
    /// The first `count` images in file order (which may all be of one class).
    case first(count: Int)

    /// The indices of the chosen images among `labels`, in file order.
    public func indices(_ labels: [Int]) -> [Int] {
        switch self {
        case .all:
            return Array(labels.indices)
        case .first(let count):
            return Array(labels.indices.prefix(count))
        case let .stratified(count, seed):
            guard count < labels.count else { return Array(labels.indices) }
            var rng = RandomSource(seed: seed)
            let byClass = Dictionary(grouping: labels.indices) { labels[$0] }.sorted { $0.key < $1.key }
            // Each class's share, rounded down; the images left go to the largest remainders.
            let exact = byClass.map { Double(count) * Double($0.value.count) / Double(labels.count) }
            var take = exact.map { Int($0) }
            let order = exact.indices.sorted {
                (exact[$0] - Double(take[$0]), -$0) > (exact[$1] - Double(take[$1]), -$1)
            }
            for c in order.prefix(count - take.reduce(0, +)) { take[c] += 1 }
            var picked: [Int] = []
            for (c, group) in byClass.enumerated() {
                picked += rng.permutation(group.value.count).prefix(take[c]).map { group.value[$0] }
            }
            return picked.sorted()
        }
    }

    /// How a report names the selection: `all 10000 test images`, `500 of 10000 test images
    /// (stratified sample, seed 0)`, `the first 100 of 10000 test images (file order)`.
    public func text(of total: Int, noun: String = "test images") -> String {
        switch self {
        case .stratified(let count, let seed) where count < total:
            return "\(count) of \(total) \(noun) (stratified sample, seed \(seed))"
        case .first(let count) where count < total:
            return "the first \(count) of \(total) \(noun) (file order)"
        case .all, .stratified, .first:
            return "all \(total) \(noun)"
        }
    }
}

extension Dataset {
    /// The test images and labels `selection` chooses, with inputs multiplied by `inputScale`.
    public func testImages(_ selection: ImageSelection, inputScale: Float = 1) -> TestImages {
        let per = imageShape.reduce(1, *), picked = selection.indices(testLabels)
        return TestImages(
            images: picked.flatMap { testImages[$0 * per..<($0 + 1) * per] }, labels: picked.map { testLabels[$0] },
            inputScale: inputScale)
    }
}
