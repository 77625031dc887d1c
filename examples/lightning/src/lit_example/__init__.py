"""A small LightningModule project audited by auditor's AuditCallback before it trains."""
