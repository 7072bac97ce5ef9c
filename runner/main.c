/*
 * faultline: the command-line entry point. Subcommands are a table of name,
 * handler and one-line summary; the top-level usage is generated from it.
 */
#include "cli.h"
#include "run.h"

#include <stdio.h>
#include <string.h>

#ifndef FAULTLINE_VERSION
#define FAULTLINE_VERSION "unknown"
#endif

static const struct run_command commands[] = {
    {"audit", run_cmd_audit,
     "check a Raft cluster's invariants from its nodes' logs"},
    {"check", run_cmd_check, "check a recorded history for linearizability"},
    {"clean", run_cmd_clean,
     "remove what killed runs left behind: namespaces, processes, files"},
    {"gen", run_cmd_gen,
     "generate a synthetic history that is linearizable by construction"},
    {"repro", run_cmd_repro,
     "run a stored run again with its seed and recorded faults"},
    {"report", run_cmd_report,
     "import runs into the results database, or render its index.html"},
    {"run", run_cmd_run,
     "run a campaign against a real cluster with a nemesis, then check it"},
    {"sim", run_cmd_sim,
     "run the deterministic Raft simulation over one or many seeds"},
    {"sweep", run_cmd_sweep,
     "run campaigns over a range of seeds, several at a time"},
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: faultline COMMAND [OPTIONS]\n\n"
                 "faultline is a chaos testing and verification platform.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'faultline COMMAND --help' for a command's options.\n"
                 "Exit codes: 0 valid, 1 invalid, 2 usage or input error, "
                 "3 unknown, 4 infrastructure failure.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return RUN_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("faultline %s\n", FAULTLINE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "faultline: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return RUN_EXIT_USAGE;
}
