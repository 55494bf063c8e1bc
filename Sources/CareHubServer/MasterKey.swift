import CareHubCrypto
import Foundation

/// The hub's master key: 32 random bytes from `CAREHUB_MASTER_KEY` (64 hex digits) or from
/// `master.key` in the data directory, created on first run with mode 0600.
///
/// The key never goes into the database. A key file readable by group or others is refused.
public enum MasterKey {
    /// The environment variable that, when set, holds the master key in hex.
    public static let environmentVariable = "CAREHUB_MASTER_KEY"
    /// The key file's name in the data directory.
    public static let fileName = "master.key"

    /// Loads (or on first run creates) the master key.
    public static func load(dataDirectory: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SymmetricKey {
        if let hex = environment[environmentVariable] {
            guard let bytes = Hex.decode(hex), bytes.count == 32 else {
                throw HubError.masterKey("\(environmentVariable) must be 64 hexadecimal digits (32 bytes)")
            }
            return SymmetricKey(bytes: bytes)
        }
        let path = (dataDirectory as NSString).appendingPathComponent(fileName)
        let manager = FileManager.default
        if manager.fileExists(atPath: path) {
            let attributes = try manager.attributesOfItem(atPath: path)
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
            guard mode & 0o077 == 0 else {
                throw HubError.masterKey("\(path) has mode \(String(mode, radix: 8)); it must be 0600 (run: chmod 600 \(path))")
            }
            guard let data = manager.contents(atPath: path), data.count == 32 else {
                throw HubError.masterKey("\(path) must hold exactly 32 bytes")
            }
            return SymmetricKey(bytes: Array(data))
        }
        let bytes = SecureRandom.bytes(32)
        guard manager.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw HubError.masterKey("cannot create \(path)")
        }
        return SymmetricKey(bytes: bytes)
    }

    /// The key that signs audit checkpoints: derived from the master key for its own purpose, so it
    /// is separate from every data key and cannot decrypt anything.
    public static func auditKey(from master: SymmetricKey) throws -> SymmetricKey {
        SymmetricKey(bytes: try master.withUnsafeBytes {
            try HKDF.sha256(key: Array($0), salt: Array("carehub.audit".utf8), info: Array("checkpoint-hmac.v1".utf8), outputByteCount: 32)
        })
    }
}
