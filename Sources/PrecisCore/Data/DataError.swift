/// A problem with a data file: the file and what is wrong, printed as `FILE: problem`.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var problem: String
    /// One line for each of several problems the first line sums up (every node an import refuses).
    public var details: [String]

    public init(file: String, problem: String, details: [String] = []) {
        (self.file, self.problem, self.details) = (file, problem, details)
    }

    public var description: String { (["\(file): \(problem)"] + details.map { "  " + $0 }).joined(separator: "\n") }
}
