"""Unit tests of panther_error.py (PantherError), run by CTest on
/usr/bin/python3 against the file in the source tree."""

import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from panther_error import PantherError  # noqa: E402  (after the path is set)


class PantherErrorTest(unittest.TestCase):
    def test_str_joins_extra_arguments_after_the_first(self):
        self.assertEqual(str(PantherError()), "")
        self.assertEqual(str(PantherError("bad")), "bad")
        self.assertEqual(str(PantherError("bad", 1, "two")), "bad: 1, two")

    def test_it_is_an_exception(self):
        with self.assertRaises(Exception) as caught:
            raise PantherError("x", "y")
        self.assertEqual(caught.exception.args, ("x", "y"))


if __name__ == "__main__":
    unittest.main()
