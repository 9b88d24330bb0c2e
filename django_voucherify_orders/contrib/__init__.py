"""Ready integrations with shop frameworks, one package per framework (``contrib.oscar``)."""
