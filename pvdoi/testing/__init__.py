"""Test doubles that behave like the real thing: a local repository server and look-alike datasets."""
