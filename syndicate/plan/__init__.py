"""Planning: turning revisions into deliveries owed (editions for subscribers, events for partners)."""
