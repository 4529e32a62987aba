import RealModule

extension Float: NetworkScalar {
    public static var precisionName: String { "float32" }
}
