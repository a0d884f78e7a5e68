/* Runs a libFuzzer target over files and directories given as arguments,
 * once per file, so the targets build and run in every normal build (as a
 * unit test over the committed seed corpus) and cannot rot. A crash or a
 * failed check aborts the process, which fails the test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    if (!f)
        goto fail;
    if (fseek(f, 0, SEEK_END) != 0)
        goto fail_file;
    n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto fail_file;
    buf = malloc(n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        goto fail_buf;
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;

fail_buf:
    free(buf);
fail_file:
    fclose(f);
fail:
    perror(path);
    return -1;
}

static int run_dir(const char *dir, int *count)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    int rv = 0;

    if (n < 0) {
        perror(dir);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        if (names[i]->d_name[0] != '.' && rv == 0) {
            int w = snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
            rv = w < 0 || (size_t)w >= sizeof(path) ? -1 : run_file(path);
            (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rv;
}

int main(int argc, char **argv)
{
    int count = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        int rv = S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) : run_file(argv[i]);
        if (!S_ISDIR(st.st_mode))
            count++;
        if (rv != 0)
            return 1;
    }
    printf("%d inputs ran clean\n", count);
    /* An empty corpus means the test proves nothing. */
    return count > 0 ? 0 : 1;
}
