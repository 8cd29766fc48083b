"""What the tests share: processes and stores to start, wire captures, expected trees, CI rules."""
