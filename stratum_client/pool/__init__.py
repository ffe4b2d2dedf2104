"""Pool connections: asyncio transport, failover policy and the pool manager."""
