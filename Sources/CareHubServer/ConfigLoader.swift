import CareHubCore
import CareHubStages
import Foundation

/// Reads pipeline.conf from disk and checks it with the standard stage registry.
public enum ConfigLoader {
    /// Loads and checks `path`; errors are `file:line: …` lines (or one line if the file cannot be read).
    public static func load(path: String) throws -> HubConfig {
        let bytes: [UInt8]
        do {
            // Read bytes, not a String: a line that is not UTF-8 is then reported with its number.
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw ConfigError([ConfigIssue(file: path, line: 0, message: "cannot read the file: \(describe(error))")])
        }
        return try StageRegistry.standard.load(bytes: bytes, file: path)
    }

    private static func describe(_ error: any Error) -> String {
        let nsError = error as NSError
        if nsError.domain == NSCocoaErrorDomain && nsError.code == NSFileReadNoSuchFileError { return "no such file" }
        return nsError.localizedDescription
    }
}
