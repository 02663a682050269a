"""Last values and history of every resource of every device (``ValueStore``)."""
