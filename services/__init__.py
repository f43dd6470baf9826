"""The platform's six services, one package each; they share only the library (``shared``)."""
