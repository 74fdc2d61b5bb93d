"""Nothing process-wide points into the module once Unbound unloads it.

Unbound's dynlib module calls the module's deinit and dlcloses it at every
reload (and at exit). cJSON's allocation hooks are process-wide: hooks left
pointing into the unloaded module would be called by whatever uses libcjson
next in the same process (another dynlib module, a library) - a jump into
unmapped memory. Here a small library preloaded into Unbound links libcjson
and parses JSON in a loop on a thread of its own, as such a neighbour
would; Unbound reloads the module several times and must keep running and
filtering.
"""

import os
import shutil
import subprocess
import unittest

import harness
from harness import entry, feed

ZONE = "unload.test"
ZONES = {ZONE: harness.zone_text(ZONE, ["www A 192.0.2.80", "c2 A 198.51.100.1"])}
FEED = feed([entry("U-0001", ["c2." + ZONE])])
SINKHOLE_A = "192.0.2.1"
RELOADS = 6

# Parses JSON every 0.1 ms on its own thread, from the moment it is loaded.
NEIGHBOUR = r"""
#include <cjson/cJSON.h>
#include <pthread.h>
#include <time.h>

static void *parse_forever(void *unused)
{
	struct timespec pause = { 0, 100000 };
	for (;;) {
		cJSON *value = cJSON_Parse("{\"a\":[1,2,{\"b\":\"c\"}],\"d\":\"e\"}");
		cJSON_Delete(value);
		nanosleep(&pause, NULL);
	}
	return unused;
}

__attribute__((constructor)) static void start(void)
{
	pthread_t thread;
	if (pthread_create(&thread, NULL, parse_forever, NULL) == 0)
		pthread_detach(thread);
}
"""


def build_neighbour(workdir):
    """The neighbour library, compiled into workdir; None without a compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not compiler:
        return None
    source = workdir.write("neighbour.c", NEIGHBOUR)
    library = workdir.file("libneighbour.so")
    result = subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", library, source,
                             "-lcjson", "-lpthread"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True)
    if result.returncode != 0:
        raise RuntimeError("cannot build the neighbour library:\n" + result.stdout)
    return library


class UnloadTest(unittest.TestCase):

    def test_another_cjson_user_survives_reloads(self):
        workdir = harness.WorkDir("unload")
        self.addCleanup(workdir.cleanup)
        library = build_neighbour(workdir)
        if not library:
            self.skipTest("no C compiler for the neighbour library")
        nsd = harness.Nsd(workdir, ZONES)
        self.addCleanup(nsd.stop)
        nsd.start()
        unbound = harness.Unbound(
            workdir, {ZONE: nsd.port}, feed=FEED, preload=[library],
            settings={"feed": "feed.json", "sinkhole": {"a": SINKHOLE_A}, "watch-interval": 0})
        self.addCleanup(unbound.stop)
        unbound.start()
        self.assertEqual(unbound.query("c2." + ZONE).rdata("A"), [SINKHOLE_A])
        for reload in range(RELOADS):
            try:
                unbound.reload(keep_cache=reload % 2 == 0)
            except RuntimeError as e:
                self.fail("reload %d: %s\nUnbound running: %s" % (
                    reload + 1, e, unbound.process.running()))
            self.assertTrue(unbound.process.running(),
                            "Unbound died after reload %d (exit %s):\n%s" % (
                                reload + 1, unbound.process.returncode(),
                                unbound.output()[-3000:]))
            self.assertEqual(unbound.query("c2." + ZONE).rdata("A"), [SINKHOLE_A])
            self.assertEqual(unbound.query("www." + ZONE).rdata("A"), ["192.0.2.80"])


if __name__ == "__main__":
    unittest.main()
