"""Domain services: the rules, one module per capability; no Telegram import in here."""
