import ArgumentParser
import Foundation
import PrecisCore
import PrecisWeights

struct Formats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The small number formats (OCP FP8, MX FP6/FP4, E8M0): a table, or raw values converted to codes.",
        discussion: """
            Without --encode, prints each format's bits, bias, largest value, smallest values and special codes. \
            With --encode F --input IN --output OUT, reads IN as little-endian float32 values and writes one \
            code byte per value (round to nearest, ties to even; see --saturate).
            """)

    @Option(help: "Convert values to codes of this format.")
    var encode: MiniFloat?

    @Option(help: ArgumentHelp("Little-endian float32 values to convert.", valueName: "file"))
    var input: String?

    @Option(help: ArgumentHelp("Where to write the codes, one byte each.", valueName: "file"))
    var output: String?

    @Flag(help: "Replace an existing --output file (it may be the --input: the values are read first).")
    var force = false

    @Flag(help: "Values beyond the largest finite one (and infinities) become it, instead of inf or NaN.")
    var saturate = false

    @Flag(help: "Print the table as JSON (schema \(ReportSchema.formats)).")
    var json = false

    func validate() throws {
        if encode != nil && (input == nil || output == nil) {
            throw ValidationError("--encode needs --input and --output")
        }
        if encode == nil && (input != nil || output != nil || saturate || force) {
            throw ValidationError("--input, --output, --saturate and --force go with --encode")
        }
        if let output, let problem = outputRefusal(output, force: force) {
            throw ValidationError("--output \(output): \(problem)")
        }
    }

    func run() throws {
        try reportingErrors {
            guard let format = encode, let input, let output else { return try printTable() }
            guard let data = FileManager.default.contents(atPath: input) else {
                throw DataError(file: input, problem: "no such file, or it cannot be read")
            }
            guard data.count % 4 == 0 else {
                throw DataError(file: input, problem: "holds \(data.count) bytes, not a whole number of float32 values")
            }
            let codes = data.withUnsafeBytes { raw in
                (0..<(data.count / 4)).map {
                    format.encode(
                        Float(
                            bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))
                        ),
                        saturating: saturate)
                }
            }
            try AtomicFiles.write(Data(codes), to: output)
        }
    }

    /// One row per format.
    struct Row: Codable {
        let name: String, bits: Int, exponentBits: Int, mantissaBits: Int, bias: Int
        let max: Float, smallest: Float, infinities: Bool, nan: Bool

        private enum CodingKeys: String, CodingKey {
            case name, bits, exponentBits = "exponent_bits", mantissaBits = "mantissa_bits", bias, max, smallest
            case infinities, nan
        }
    }

    struct Table: Codable {
        var schema = ReportSchema.formats
        let formats: [Row]
    }

    func printTable() throws {
        let rows = MiniFloat.all.map {
            Row(
                name: $0.name, bits: $0.bits, exponentBits: $0.exponentBits, mantissaBits: $0.mantissaBits,
                bias: $0.bias,
                max: $0.max, smallest: $0.smallest, infinities: $0.specials == .ieee,
                nan: $0.specials != .none)
        }
        if json { return try printJSON(Table(formats: rows)) }
        var table = TextTable([
            ("format", .left), ("bits", .right), ("E", .right), ("M", .right), ("bias", .right), ("largest", .right),
            ("smallest", .right), ("infinities", .left), ("NaN", .left),
        ])
        for r in rows {
            table.add([
                r.name, "\(r.bits)", "\(r.exponentBits)", "\(r.mantissaBits)", "\(r.bias)", "\(r.max)", "\(r.smallest)",
                r.infinities ? "yes" : "no", r.nan ? "yes" : "no",
            ])
        }
        print(table.lines().joined(separator: "\n"))
    }
}
