// Float16 is unavailable on macOS/Catalyst x86_64; the same guard swift-numerics uses.
#if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
    import RealModule

    extension Float16: NetworkScalar {
        public static var precisionName: String { "float16" }
    }
#endif
