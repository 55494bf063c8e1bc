import CareHubCore

/// The wire code `work` was refused with, nil if it succeeded, `internal` for any other error.
public func refusalCode(_ work: () async throws -> Any) async -> ErrorCode? {
    do {
        _ = try await work()
        return nil
    } catch let error as PipelineError {
        return error.code
    } catch {
        return .internal
    }
}
