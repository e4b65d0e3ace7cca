"""drivevla: a vision-language-action driving agent with its own simulator harness."""

__version__ = "0.1.0"
