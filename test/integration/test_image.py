"""The feed's index image (README, "Index images"): the module writes the
index it built beside the last-good copy and, at a restart or reload with
an unchanged feed, maps it instead of parsing the feed again; a changed
feed, or a damaged image, is parsed as before (the image is then written
anew), and answers are the same either way.

Each test has its own NSD + Unbound; the state directory is the feed's
directory (the default), the work dir.
"""

import os
import re
import unittest

import harness
from harness import entry, feed

ZONE = "image.test"
ZONES = {ZONE: harness.zone_text(ZONE, ["www A 192.0.2.80", "c2 A 198.51.100.1",
                                        "other A 198.51.100.2", "x.w A 198.51.100.3"])}
SINKHOLE_A = "192.0.2.1"
C2, OTHER, BELOW = "c2." + ZONE, "other." + ZONE, "x.w." + ZONE
FEED = feed([entry("I-0001", [C2]), entry("I-0002", ["*.w." + ZONE])], serial=3)
MAPPED = re.compile(r"dnsfilter: (\S+): index mapped from its image \(feed unchanged\)")


class ImageTest(unittest.TestCase):

    def setUp(self):
        self.nsd, self.unbound = harness.start_stack(
            self.addCleanup, "image", ZONES,
            {"feed": "feed.json", "sinkhole": {"a": SINKHOLE_A}}, FEED)
        self.image = self.unbound.workdir.file("feed.json.index")

    def assertFiltering(self):
        for name in (C2, BELOW):
            answer = self.unbound.query(name, "A")
            self.assertEqual(answer.rdata("A"), [SINKHOLE_A], answer.text)
        self.assertEqual(self.unbound.query(OTHER, "A").rdata("A"), ["198.51.100.2"])

    def restart(self):
        self.unbound.stop()
        self.unbound.start()
        return self.unbound.output()

    def test_unchanged_feed_is_mapped_at_restart(self):
        self.assertTrue(os.path.isfile(self.image), "no image written at the first load")
        self.assertNotRegex(self.unbound.output(), MAPPED, "mapped before one existed")
        log = self.restart()
        found = MAPPED.search(log)
        self.assertTrue(found, "the image was not used:\n" + log[-3000:])
        self.assertEqual(os.path.realpath(found.group(1)), os.path.realpath(self.image))
        self.assertFiltering()

    def test_unchanged_feed_is_mapped_at_reload(self):
        mark = self.unbound.log_size()
        self.unbound.reload()
        self.assertRegex(self.unbound.log_since(mark), MAPPED)
        self.assertFiltering()

    def test_changed_feed_is_parsed_and_its_image_written(self):
        before = os.stat(self.image).st_ino
        self.unbound.write_feed(feed([entry("I-0009", [OTHER])], serial=4))
        log = self.restart()
        self.assertNotRegex(log, MAPPED)
        self.assertNotEqual(os.stat(self.image).st_ino, before, "image not rewritten")
        self.assertEqual(self.unbound.query(OTHER, "A").rdata("A"), [SINKHOLE_A])
        self.assertEqual(self.unbound.query(C2, "A").rdata("A"), ["198.51.100.1"])
        self.assertRegex(self.restart(), MAPPED)

    def test_damaged_image_is_refused_and_replaced(self):
        size = os.path.getsize(self.image)
        with open(self.image, "r+b") as f:
            f.seek(size // 2)
            byte = f.read(1)
            f.seek(size // 2)
            f.write(bytes([byte[0] ^ 0x55]))
        log = self.restart()
        self.assertNotRegex(log, MAPPED)
        self.assertRegex(log, r"error: dnsfilter: .*feed\.json\.index: not a usable index "
                              r"image: \w")
        self.assertFiltering()
        self.assertRegex(self.restart(), MAPPED, "the image was not written anew")

    def test_truncated_image_is_refused(self):
        with open(self.image, "r+b") as f:
            f.truncate(os.path.getsize(self.image) - 8)
        log = self.restart()
        self.assertRegex(log, r"not a usable index image: truncated")
        self.assertFiltering()


if __name__ == "__main__":
    unittest.main()
