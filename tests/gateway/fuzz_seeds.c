/* Runs the gateway's fuzz harness over every file of a corpus directory (argv[1]) in a normal build,
 * so the harness and its seeds cannot rot between fuzzing campaigns. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	int n = 0;
	DIR *d = argc > 1 ? opendir(argv[1]) : NULL;
	struct dirent *e;
	if (!d)
		return 1;
	while ((e = readdir(d))) {
		char path[4096];
		uint8_t buf[65536];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			return 1;
		size_t len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, len);
		n++;
	}
	closedir(d);
	printf("# %d seeds\n", n);
	return n ? 0 : 1;
}
