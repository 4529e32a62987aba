/// The version of Precis: the command's `--version`, and `created_by` in every weight file it
/// writes, so that a file says which build's order of sums made its bits.
public let precisVersion = "0.12.0"
