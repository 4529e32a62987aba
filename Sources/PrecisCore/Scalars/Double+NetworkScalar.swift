import RealModule

extension Double: NetworkScalar {
    public static var precisionName: String { "float64" }
}
