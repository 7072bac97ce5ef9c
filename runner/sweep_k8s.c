/*
 * `faultline sweep --emit-k8s`: a Kubernetes Indexed Job that runs a
 * sweep in N shards, one pod each. Pod I (its completion index, 0-based)
 * runs `faultline sweep ... --shard I/N` and stores its runs, results.db
 * and junit.xml under /results/shard-I on the volume "results", so
 * `faultline report import` can merge the shards afterwards.
 *
 * Every string in the manifest is a YAML single-quoted scalar, in which
 * only the quote itself needs escaping (as ''). Text with control
 * characters is rejected, because such a scalar cannot carry them.
 */
#include "cli.h"
#include "sweep.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static bool yaml_safe(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p < 0x20 || *p == 0x7F)
            return false;
    }
    return true;
}

/* Prints text as a YAML single-quoted scalar. */
static void print_quoted(const char *text)
{
    putchar('\'');
    for (const char *p = text; *p; p++) {
        if (*p == '\'')
            putchar('\'');
        putchar(*p);
    }
    putchar('\'');
}

static void print_arg(const char *text)
{
    fputs("            - ", stdout);
    print_quoted(text);
    putchar('\n');
}

int run_sweep_emit_k8s(const struct run_sweep_k8s *k)
{
    char shard[64];

    if (!yaml_safe(k->image))
        return run_usage_error("sweep", "--image contains a control "
                                        "character");
    for (size_t i = 0; i < k->n_campaign_args; i++) {
        if (!yaml_safe(k->campaign_args[i]))
            return run_usage_error("sweep",
                                   "campaign path %zu contains a control "
                                   "character, which the manifest cannot "
                                   "carry",
                                   i + 1);
    }
    snprintf(shard, sizeof(shard), "$(JOB_COMPLETION_INDEX)/%" PRIu64,
             k->shards);

    printf("# faultline sweep over seeds %s in %" PRIu64
           " shards: a Kubernetes Indexed Job.\n"
           "# Pod I (0-based) runs shard I/%" PRIu64
           " and stores its runs, results.db and junit.xml\n"
           "# under /results/shard-I on the volume \"results\". Merge the "
           "shards with\n"
           "#   faultline report import --db merged/results.db "
           "/results/shard-*\n"
           "# Each real run creates network namespaces, veth pairs and "
           "nftables rules,\n"
           "# and disk faults run nodes under a seccomp supervisor, so the "
           "pods run\n"
           "# privileged (CAP_SYS_ADMIN and CAP_NET_ADMIN at the least, "
           "without the\n"
           "# runtime's default seccomp profile). Simulator runs are not in "
           "results.db;\n"
           "# their verdicts are in junit.xml. The image needs faultline on "
           "PATH and the\n"
           "# campaign files at the paths below, relative to its working "
           "directory.\n"
           "# backoffLimitPerIndex needs Kubernetes 1.29 or later; with it "
           "every\n"
           "# shard runs once, and the Job fails at the end if any shard "
           "failed.\n",
           k->seeds, k->shards, k->shards);
    printf("apiVersion: batch/v1\n"
           "kind: Job\n"
           "metadata:\n"
           "  name: faultline-sweep\n"
           "spec:\n"
           "  completionMode: Indexed\n"
           "  completions: %" PRIu64 "\n"
           "  parallelism: %" PRIu64 "\n"
           "  backoffLimitPerIndex: 0\n"
           "  maxFailedIndexes: %" PRIu64 "\n"
           "  template:\n"
           "    spec:\n"
           "      restartPolicy: Never\n"
           "      containers:\n"
           "        - name: sweep\n"
           "          image: ",
           k->shards, k->shards, k->shards);
    print_quoted(k->image);
    printf("\n"
           "          command:\n"
           "            - 'faultline'\n"
           "          args:\n");
    print_arg("sweep");
    for (size_t i = 0; i < k->n_campaign_args; i++)
        print_arg(k->campaign_args[i]);
    print_arg("--seeds");
    print_arg(k->seeds);
    print_arg("--shard");
    print_arg(shard);
    if (k->jobs != NULL) {
        print_arg("--jobs");
        print_arg(k->jobs);
    }
    if (k->budget != NULL) {
        print_arg("--budget");
        print_arg(k->budget);
    }
    if (k->duration != NULL) {
        print_arg("--duration");
        print_arg(k->duration);
    }
    print_arg("--store");
    print_arg("/results/shard-$(JOB_COMPLETION_INDEX)");
    print_arg("--junit");
    print_arg("/results/shard-$(JOB_COMPLETION_INDEX)/junit.xml");
    /* Declared from the annotation the control plane sets it from, so the
     * $(JOB_COMPLETION_INDEX) references in args do not depend on the
     * control plane adding the variable. */
    printf("          env:\n"
           "            - name: JOB_COMPLETION_INDEX\n"
           "              valueFrom:\n"
           "                fieldRef:\n"
           "                  fieldPath: "
           "metadata.annotations['batch.kubernetes.io/job-completion-index']"
           "\n"
           "          securityContext:\n"
           "            privileged: true\n"
           "          volumeMounts:\n"
           "            - name: results\n"
           "              mountPath: /results\n"
           "      volumes:\n"
           "        - name: results\n"
           "          persistentVolumeClaim:\n"
           "            claimName: faultline-results\n");
    return fflush(stdout) == 0 ? 0 : RUN_EXIT_INFRA;
}
