"""Unit tests of caching.py (panther_detection_helpers.caching as pantherd
provides it), run by CTest on /usr/bin/python3 against the file in the source
tree. As pantherd does, the tests replace the module's _kv_call and _kv_now,
here with a fake that records each call and answers from a dict.
engine/python_runtime_test.cc tests the embedded copy over pantherd's store."""

import json
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import caching  # noqa: E402  (after the path is set)

NOW = 1_700_000_000


class FakeKv:
    """Records calls; answers (string set, counter, dictionary json)."""

    def __init__(self):
        self.calls = []
        self.reply = ([], 0, "")

    def __call__(self, op, key, values, increment, expire, data):
        self.calls.append((op, key, values, increment, expire, data))
        return self.reply


class CachingTest(unittest.TestCase):
    def setUp(self):
        self.kv = FakeKv()
        self._saved = (caching._kv_call, caching._kv_now)
        caching._kv_call = self.kv
        caching._kv_now = lambda: NOW

    def tearDown(self):
        caching._kv_call, caching._kv_now = self._saved

    def test_placeholders_say_pantherd_installs_the_store(self):
        caching._kv_call, caching._kv_now = self._saved
        with self.assertRaisesRegex(RuntimeError, "no key-value store installed"):
            caching.get_counter("k")
        with self.assertRaisesRegex(RuntimeError, "no key-value clock installed"):
            caching.set_key_expiration("k", 5)

    def test_keys_must_be_str(self):
        with self.assertRaisesRegex(TypeError, r"cache keys must be str, got \[int\]"):
            caching.get_counter(1)
        self.assertEqual(self.kv.calls, [])

    def test_counters(self):
        self.kv.reply = ([], 5, "")
        self.assertEqual(caching.get_counter("c"), 5)
        self.assertEqual(caching.increment_counter("c", 2), 5)
        caching.increment_counter("c", epoch_seconds=None)
        caching.increment_counter("c", epoch_seconds="1800000000.7")
        caching.reset_counter("c")
        self.assertEqual(self.kv.calls, [
            (caching._OP_GET_COUNTER, "c", [], 0, 0, ""),
            # The default expiry is 90 days, counted from the cache's clock.
            (caching._OP_INCREMENT_COUNTER, "c", [], 2, NOW + 90 * 86400, ""),
            (caching._OP_INCREMENT_COUNTER, "c", [], 1, 0, ""),
            (caching._OP_INCREMENT_COUNTER, "c", [], 1, 1800000000, ""),
            (caching._OP_RESET_COUNTER, "c", [], 0, 0, ""),
        ])

    def test_expiry_below_1e9_counts_from_now_and_junk_means_the_default(self):
        caching.set_key_expiration("k", 60)
        caching.set_key_expiration("k", 60.9)
        caching.set_key_expiration("k", 2_000_000_000)
        caching.set_key_expiration("k", object())
        self.assertEqual([c[4] for c in self.kv.calls],
                         [NOW + 60, NOW + 60, 2_000_000_000, NOW + 90 * 86400])

    def test_threshold(self):
        self.kv.reply = ([], 2, "")
        self.assertFalse(caching.evaluate_threshold("t", threshold=3, expiry_seconds=10))
        self.kv.reply = ([], 3, "")
        self.assertTrue(caching.evaluate_threshold("t", threshold=3, expiry_seconds=10))
        self.assertEqual([c[0] for c in self.kv.calls], [
            caching._OP_INCREMENT_COUNTER, caching._OP_INCREMENT_COUNTER,
            caching._OP_RESET_COUNTER])
        self.assertEqual(self.kv.calls[0][4], NOW + 10)

    def test_string_sets(self):
        self.kv.reply = (["a", "b"], 0, "")
        self.assertEqual(caching.get_string_set("s"), {"a", "b"})
        self.assertEqual(caching.add_to_string_set("s", ["b", "a", "b"]), {"a", "b"})
        self.assertEqual(caching.remove_from_string_set("s", "a"), {"a", "b"})
        caching.put_string_set("s", {"z", "y"}, epoch_seconds=100)
        self.assertEqual(self.kv.calls, [
            (caching._OP_GET_STRING_SET, "s", [], 0, 0, ""),
            (caching._OP_ADD_TO_STRING_SET, "s", ["a", "b"], 0, NOW + 90 * 86400, ""),
            (caching._OP_REMOVE_FROM_STRING_SET, "s", ["a"], 0, NOW + 90 * 86400, ""),
            (caching._OP_PUT_STRING_SET, "s", ["y", "z"], 0, NOW + 100, ""),
        ])

    def test_string_set_edge_cases(self):
        with self.assertRaisesRegex(TypeError, r"string sets hold str only, got \[int\]"):
            caching.add_to_string_set("s", ["a", 1])
        # Nothing to add or remove: the set is read instead.
        caching.add_to_string_set("s", [])
        caching.remove_from_string_set("s", ())
        # An empty value removes the set.
        caching.put_string_set("s", [])
        self.assertEqual([c[0] for c in self.kv.calls], [
            caching._OP_GET_STRING_SET, caching._OP_GET_STRING_SET,
            caching._OP_RESET_STRING_SET])

    def test_dictionaries(self):
        caching.put_dictionary("d", {"a": [1, 2]})
        self.assertEqual(self.kv.calls[-1], (caching._OP_PUT_DICTIONARY, "d", [], 0,
                                             NOW + 90 * 86400, json.dumps({"a": [1, 2]})))
        with self.assertRaisesRegex(TypeError, "value is not a dictionary"):
            caching.put_dictionary("d", [1])
        with self.assertRaisesRegex(ValueError, "not JSON serializable"):
            caching.put_dictionary("d", {"a": object()})
        self.kv.reply = ([], 0, '{"b": 2}')
        self.assertEqual(caching.get_dictionary("d"), {"b": 2})
        self.kv.reply = ([], 0, "")
        self.assertEqual(caching.get_dictionary("d"), {})
        self.kv.reply = ([], 0, "{nope")
        with self.assertRaisesRegex(ValueError, "could not be decoded into JSON"):
            caching.get_dictionary("d")

    def test_account_age_and_ttl(self):
        self.kv.reply = (["x"], 0, "")
        self.assertTrue(caching.check_account_age("acct"))
        self.assertFalse(caching.check_account_age(""))
        self.assertFalse(caching.check_account_age(None))
        self.kv.reply = ([], 0, "")
        self.assertFalse(caching.check_account_age("acct"))
        self.assertFalse(caching.ttl_expired({"expiresAt": 1}))


if __name__ == "__main__":
    unittest.main()
