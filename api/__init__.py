"""aiohttp API: REST views, the WebSocket hub, the Kafka-to-Redis bridge and the dashboard."""
