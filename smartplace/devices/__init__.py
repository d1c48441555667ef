"""Device registry and provisioning (broker credentials and ACLs). Not built yet: see issue 6."""
