import CareHubCore

extension StageRegistry {
    /// The stages CareHub ships, in their canonical chain order. Adding a stage is one line here.
    public static let standard = StageRegistry([
        AuthStage.self,
        IdleStage.self,
        ScanStage.self,
        EncryptStage.self,
        StoreStage.self,
        PurgeStage.self,
        FanoutStage.self,
    ])
}
