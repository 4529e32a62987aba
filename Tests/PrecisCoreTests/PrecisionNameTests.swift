import PrecisCore
import Testing

/// The one grammar of precision names: every name reads back as itself, and near misses are refused.
@Suite struct PrecisionNameTests {
    /// Every floating mode, every int8 scheme in every form, every format plain and mixed.
    static let names =
        PrecisionMode.allCases.map(\.rawValue)
        + QuantScheme.all.flatMap { s in ["", "-mixed", "-dynamic", "-cle", "-cle-mixed"].map { "int8-\(s)\($0)" } }
        + (FormatMode.standard.map(\.name)
        + ["float8-e5m2-nosat", "int4-g64-z", "int4-channel-z-a8", "nvfp4-cle", "int4-g32-cle-adaround"]).flatMap {
            [$0, "\($0)-mixed"]
        }

    @Test(arguments: names)
    func nameReadsBack(_ name: String) throws {
        let precision = try #require(Precision(name: name))
        #expect(precision.name == name)
        #expect(Precision(name: precision.name) == precision)
    }

    @Test func familiesAreTold() {
        #expect(Precision(name: "int8-wchannel-au8z-mixed") == .int8(Precision.defaultInt8Scheme, .mixed))
        #expect(Precision(name: "bfloat16") == .floating(.bfloat16Acc32))
        #expect(Precision(name: "float16") == .floating(.float16))
        guard case .format(let f, mixed: true)? = Precision(name: "int4-g32-a8-mixed") else {
            Issue.record("int4-g32-a8-mixed is a mixed number format")
            return
        }
        if case .int4(let w) = f.weights { #expect(w.group == 32 && !w.zeroPoint) } else { Issue.record("int4") }
        #expect(f.activations == .int8)
        #expect(Precision.target("int8") == .int8(Precision.defaultInt8Scheme, .plain))
    }

    @Test(arguments: [
        "", "int8", "int8-", "int8-wchannel", "int8-wchannel-au8", "int8-wchannel-au8z-plain",
        "int8-wchannel-au8z-mixed-x", "int8-wchannel-au8z-mixed-cle", "int8-wchannel-au8z-cle-cle", "int8-cle",
        "float8-e4m3-mixed-mixed", "mxfp4-nosat", "int4", "int4-g16", "int4-a8-z", "float32-mixed", "bfloat16-mixed",
        "FLOAT32", "mxfp4 ",
    ])
    func nearMissesAreRefused(_ name: String) {
        #expect(Precision(name: name) == nil)
    }

    @Test func selectionsKeepOrderAndRefuseUnknowns() throws {
        let s = try PrecisionSelection(parsing: "mxfp4,float16,int8,mxfp4,bfloat16,bfloat16-acc32")
        #expect(!s.all)
        #expect(
            s.items == [
                .precision(.format(Precision(name: "mxfp4")!.format!, mixed: false)), .precision(.floating(.float16)),
                .anyInt8, .precision(.floating(.bfloat16Acc32)),
            ])
        #expect(try PrecisionSelection(parsing: "all").precisions == Precision.all)
        #expect(throws: ModelError.self) { try PrecisionSelection(parsing: "float32,float7") }
        #expect(throws: ModelError.self) { try PrecisionSelection(parsing: "float32,") }
    }
}
