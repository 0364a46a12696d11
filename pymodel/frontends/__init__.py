"""Front ends: models from other frameworks (TFLite) into qmac artifacts, and the
reference runtimes they are checked against."""
