"""The `lethe` operator CLI: the admin API's verbs for a person at a terminal."""
