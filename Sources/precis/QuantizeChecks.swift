import ArgumentParser
import PrecisCore
import PrecisWeights

/// Which combinations of `quantize` options make sense, checked before any work.
extension Quantize {
    func validate() throws {
        try validateSearch()
        if let format { try validate(format) }
        if rounding != .nearest && format == nil {
            throw ValidationError("--rounding chooses how a number format's weights are rounded: give --format")
        }
        if let bootstrap {
            guard compare else { throw ValidationError("--bootstrap resamples the --compare runs: give --compare") }
            guard (2...1000).contains(bootstrap) else { throw ValidationError("--bootstrap takes 2 to 1000 resamples") }
        }
        if compare && (equalize || scheme.values.contains(where: \.equalized)) {
            throw ValidationError("--compare runs the schemes without equalization: store one with --equalize")
        }
        guard calibrationSize > 0 else { throw ValidationError("--calibration-size must be positive") }
        guard percentile > 50 && percentile <= 100 else { throw ValidationError("--percentile must be in (50, 100]") }
        if percentileOption != nil && !calibration.values.contains(.percentile) {
            throw ValidationError("--percentile goes with --calibration percentile")
        }
        if record && !compare { throw ValidationError("--record stores the --compare table: give --compare") }
        // Quantizing stores a variant, and --record a table: the folder is checked before the work.
        if record || !compare, let problem = editProblem(file) { throw ValidationError("\(file): \(problem)") }
        if (sensitivity || maxDrop != nil) && compare {
            throw ValidationError("--sensitivity and --max-drop take one --scheme and one --calibration, not --compare")
        }
        if let maxDrop, !(maxDrop >= 0) { throw ValidationError("--max-drop must be a number of points, 0 or more") }
        if fallback != .float32 && maxDrop == nil {
            throw ValidationError("--fallback chooses the precision of the layers --max-drop keeps in float")
        }
        let allMethods = calibration.values.count == CalibrationMethod.allCases.count
        if dynamic && (compare || sensitivity || maxDrop != nil || biasCorrection || !allMethods) {
            throw ValidationError(
                "--dynamic stores one scheme without calibration: no --compare, --sensitivity, --max-drop, "
                    + "--bias-correction or --calibration")
        }
        if dynamic && scheme.values.count != 1 { throw ValidationError("--dynamic needs one --scheme") }
        if !compare && !dynamic && format == nil && !searching
            && (scheme.values.count != 1 || calibration.values.count != 1)
        {
            throw ValidationError(
                "storing a variant needs one --scheme and one --calibration (or --compare to try them all)")
        }
    }

    /// The options `--format` takes: not the int8 ones; `--calibration` minmax or mse for int4 weights.
    func validate(_ format: FormatMode) throws {
        if compare || dynamic || biasCorrection || fallback != .float32 || scheme.values.count != QuantScheme.all.count
        {
            throw ValidationError(
                "--format stores a number format: no --compare, --dynamic, --bias-correction, --fallback or --scheme")
        }
        if calibration.values.count != CalibrationMethod.allCases.count {
            guard case .int4 = format.weights else {
                throw ValidationError(
                    "--calibration with --format applies to the int4 formats only (their weight ranges); "
                        + "\(format.name) takes its scales from the values")
            }
            guard calibration.values.count == 1, [.minmax, .mse].contains(calibration.values[0]) else {
                throw ValidationError(
                    "--calibration with --format \(format.name) chooses its weight ranges: minmax or mse")
            }
        }
    }
}
