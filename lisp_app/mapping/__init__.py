"""The mapping system's state: the map-cache, the local database and locator selection."""
