"""Task machinery: our ConfigurableTask subclass and what it needs."""
