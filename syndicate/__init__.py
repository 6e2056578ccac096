"""syndicate: statements in; feeds, newsletters and partner pushes out."""

__version__ = "0.1.0"
