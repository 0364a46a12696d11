"""Studies that regenerate documents: the accuracy study behind ``make accuracy``."""
