import Foundation
import PrecisCore
import Testing

@testable import PrecisWeights

/// A fresh scratch directory for one test.
func scratch() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("precis-h5-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite struct HDF5Tests {
    func roundTrip<E: HDF5Scalar & Equatable>(_ values: [E], bits: (E) -> UInt64) throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/t.h5"
        do {
            let root = try HDF5File.create(path).root
            try root.createGroup("g").write("d", shape: [2, values.count / 2], values)
        }
        let g = try HDF5File.open(path).root.group("g")
        #expect(
            try g.datasetInfo("d")
                == HDF5DatasetInfo(
                    shape: [2, values.count / 2], type: E.hdf5Type, typeName: E.hdf5Type.rawValue, checksummed: true))
        let back = try g.read("d", as: E.self)
        #expect(back.shape == [2, values.count / 2])
        #expect(back.values.map(bits) == values.map(bits))
    }

    @Test func everyStoredTypeRoundTripsBitExact() throws {
        try roundTrip(
            [0.1, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1 / 3, -2.5e-300]
                as [Double],
            bits: { $0.bitPattern })
        try roundTrip(
            [0.1, -0.0, .infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1 / 3] as [Float],
            bits: { UInt64($0.bitPattern) })
        try roundTrip(
            [0.1, -0.0, .infinity, .leastNonzeroMagnitude, 65504, 1 / 3, -6.1e-5, 1] as [Float16],
            bits: { UInt64($0.bitPattern) })
        try roundTrip([-128, -1, 0, 1, 127, 42] as [Int8], bits: { UInt64(UInt8(bitPattern: $0)) })
        try roundTrip([0, 1, 128, 255] as [UInt8], bits: { UInt64($0) })
        try roundTrip([Int32.min, -1, 0, Int32.max] as [Int32], bits: { UInt64(UInt32(bitPattern: $0)) })
    }

    @Test func attributesRoundTrip() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/a.h5"
        let values: [(String, HDF5Attribute)] = [
            ("s", .string("précis ✓")), ("i", .int(-7)), ("d", .double(0.1)),
            ("is", .ints([1, 28, 28])), ("ds", .doubles([0.5, -1e-300])), ("e", .string("")),
        ]
        do {
            let root = try HDF5File.create(path).root
            for (n, v) in values { try root.setAttribute(n, v) }
            try root.setAttribute("i", .int(8))  // replacing keeps one attribute
        }
        let root = try HDF5File.open(path).root
        #expect(try root.attributeNames() == ["d", "ds", "e", "i", "is", "s"])
        for (n, v) in values where n != "i" { #expect(try root.attribute(n) == v) }
        #expect(try root.attribute("i") == .int(8))
        #expect(try root.attribute("missing") == nil)
    }

    @Test func readingTheWrongTypeOrAMissingDatasetThrows() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/w.h5"
        do { try HDF5File.create(path).root.write("x", shape: [3], [1, 2, 3] as [Double]) }
        let root = try HDF5File.open(path).root
        #expect(throws: HDF5Error(file: path, path: "/x", message: "has element type float64, expected float32")) {
            try root.read("x", as: Float.self)
        }
        #expect(throws: HDF5Error(file: path, path: "/y", message: "missing dataset")) {
            try root.read("y", as: Double.self)
        }
        #expect(throws: HDF5Error(file: path, path: "/g", message: "missing group")) { try root.group("g") }
    }

    @Test func libraryErrorsBecomeMessagesNotPrints() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/e.h5"
        let root = try HDF5File.create(path).root
        _ = try root.createGroup("g")
        #expect {
            _ = try root.createGroup("g")
        } throws: { error in
            let e = error as! HDF5Error
            return e.path == "/g" && e.message.hasPrefix("creating the group failed: ") && e.message.count > 30
        }
    }
}

@Suite struct BFloat16Tests {
    @Test func roundsToNearestEven() {
        #expect(BFloat16(1).bitPattern == 0x3F80)
        #expect(BFloat16(Float(bitPattern: 0x3F80_8000)).bitPattern == 0x3F80)  // tie, even stays
        #expect(BFloat16(Float(bitPattern: 0x3F81_8000)).bitPattern == 0x3F82)  // tie, odd rounds up
        #expect(BFloat16(Float(bitPattern: 0x3F80_8001)).bitPattern == 0x3F81)
        #expect(BFloat16(Float.greatestFiniteMagnitude).float == .infinity)
        #expect(BFloat16(1e30).bitPattern == 0x714A)  // 0x7149F2CA rounds up
        #expect(BFloat16(.nan).float.isNaN)
        #expect(BFloat16(-0.0).bitPattern == 0x8000)
    }

    @Test func roundTripsThroughHDF5BitExact() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/b.h5"
        let values = [1, -2.5, 1e30, 3e-39, 0.1, 65504, 1e5, -0.0].map { BFloat16(Float($0)) }
        do { try HDF5File.create(path).root.write("x", shape: [8], values) }
        let root = try HDF5File.open(path).root
        #expect(try root.datasetInfo("x").type == .bfloat16)
        #expect(try root.read("x", as: BFloat16.self).values == values)
        #expect(throws: HDF5Error.self) { try root.read("x", as: Float16.self) }
    }
}
