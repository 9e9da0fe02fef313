"""log-patterns on the build machine's Python, over real files in a temporary
directory (the bindings and sdk/python-plugin on PYTHONPATH, as for the helper's
tests). The host's end-to-end test is tests/tests/python_plugin.rs."""

import os
import re
import tempfile
import unittest
from unittest import mock

import monitor_plugin
from log_patterns import Error, LogPatterns, count_lines


def values(metrics: list) -> dict:
    return {(m.name, tuple(sorted((l.key, l.value) for l in m.labels))): m.value for m in metrics}


def lines_total(metrics: list, file: str, pattern: str) -> float:
    return values(metrics)[("log_pattern_lines_total", (("file", file), ("pattern", pattern)))]


class CountLines(unittest.TestCase):
    def test_each_matching_line_counts_once(self) -> None:
        expression = re.compile(r"error|Error", re.MULTILINE)
        self.assertEqual(count_lines(expression, "error Error error\nok\nan Error\n"), 2)
        self.assertEqual(count_lines(expression, ""), 0)
        self.assertEqual(count_lines(re.compile(r"^Traceback", re.MULTILINE), "Traceback\n  Traceback\nTraceback"), 2)

    def test_a_match_across_lines_does_not_count(self) -> None:
        expression = re.compile(r"loss\s+nan", re.MULTILINE)
        self.assertEqual(count_lines(expression, "loss\nnan\nloss nan\n"), 1)
        self.assertEqual(count_lines(re.compile(r".*", re.MULTILINE), "a\nb\n"), 2)


class Collect(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.plugin = LogPatterns()
        self.warnings: list[str] = []
        patcher = mock.patch.object(monitor_plugin.log, "warn", side_effect=self.warnings.append)
        patcher.start()
        self.addCleanup(patcher.stop)

    def write(self, name: str, text: str, mode: str = "a") -> None:
        with open(os.path.join(self.dir, name), mode) as f:
            f.write(text)

    def test_lines_are_counted_as_they_are_appended(self) -> None:
        self.plugin.configure(f'directory = "{self.dir}"')
        self.write("job.log", "step 1\nTraceback (most recent call last):\nRuntimeError: CUDA out of memory\nha")
        self.write("notes.txt", "Traceback (most recent call last):\n")
        first = self.plugin.collect()
        self.assertEqual(values(first)[("log_files", ())], 1.0)
        self.assertEqual(lines_total(first, "job.log", "traceback"), 1)
        self.assertEqual(lines_total(first, "job.log", "oom"), 1)
        self.assertEqual(lines_total(first, "job.log", "error"), 1)
        self.assertNotIn("log_pattern_last_match_age_seconds", {name for name, _ in values(first)})
        # The rest of a line is read with it; a match now is news.
        self.write("job.log", "lf: out of memory\n")
        second = self.plugin.collect()
        self.assertEqual(lines_total(second, "job.log", "oom"), 2)
        age = values(second)[("log_pattern_last_match_age_seconds", (("file", "job.log"), ("pattern", "oom")))]
        self.assertLess(age, 5)
        self.assertEqual(values(second)[("log_unread_bytes", (("file", "job.log"),))], 0)

    def test_a_replaced_file_is_read_from_its_start(self) -> None:
        self.plugin.configure(f'directory = "{self.dir}"\n[patterns]\nnan = "loss nan"')
        self.write("job.log", "loss nan\nloss nan\n")
        self.assertEqual(lines_total(self.plugin.collect(), "job.log", "nan"), 2)
        os.rename(os.path.join(self.dir, "job.log"), os.path.join(self.dir, "job.log.1"))
        self.write("job.log", "loss nan\n")
        metrics = self.plugin.collect()
        self.assertEqual(lines_total(metrics, "job.log", "nan"), 1)
        self.assertEqual(set(p for (name, labels) in values(metrics) for k, p in labels if k == "pattern"), {"nan"})

    def test_a_large_file_is_read_a_budget_a_tick(self) -> None:
        self.plugin.configure(f'directory = "{self.dir}"\nread_kib = 64')
        self.write("big.log", "x" * 99 + "\n" + ("ok line\n" * 20_000) + "Traceback (most recent call last)\n")
        metrics = self.plugin.collect()
        self.assertGreater(values(metrics)[("log_unread_bytes", (("file", "big.log"),))], 0)
        for _ in range(10):
            metrics = self.plugin.collect()
        self.assertEqual(values(metrics)[("log_unread_bytes", (("file", "big.log"),))], 0)
        self.assertEqual(lines_total(metrics, "big.log", "traceback"), 1)

    def test_a_directory_it_cannot_see_is_an_error_naming_the_grant(self) -> None:
        missing = os.path.join(self.dir, "nope")
        self.plugin.configure(f'directory = "{missing}"')
        with self.assertRaises(Error) as caught:
            self.plugin.collect()
        self.assertEqual(
            str(caught.exception),
            f"{missing} is not visible: it does not exist, or it is not granted "
            f"(monitor plugins enable log-patterns --grant fs-read:{missing})",
        )

    def test_a_bad_configuration_is_refused_with_the_field(self) -> None:
        for text, message in [
            ("", "missing `directory`: set it in log-patterns.toml"),
            ('directory = "logs"', 'directory = "logs": must be an absolute path'),
            ('directory = "/x"\n[patterns]\noom = "(out of"', "patterns.oom = '(out of': not a regular expression"),
            ('directory = "/x"\nread_kib = 0', "read_kib must be at least 1"),
            ('directory = "/x"\nfile = "*.txt"', "line 2 `file = \"*.txt\"`: unknown field `file`"),
        ]:
            with self.assertRaises(Error) as caught:
                self.plugin.configure(text)
            self.assertIn(message, str(caught.exception))


if __name__ == "__main__":
    unittest.main()
