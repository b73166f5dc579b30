"""Helpers shared by the tests (no tests here): tests.support.http serves HTTP on 127.0.0.1."""
