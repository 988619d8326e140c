/* main.c — gradc's command line: dispatches to one command per file. */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "usage: gradc COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  eval EXPR|FILE:FUNC [--at NAME=VALUE,...] [--grad] [--wrt NAMES] [--json]\n"
    "                      evaluate a formula (and its gradient) through\n"
    "                      generated, compiled C\n"
    "  emit FILE|-e EXPR [-o OUT.c] [--header OUT.h] [--name N] [--prefix P]\n"
    "       [--wrt NAMES] [--float] [--freeze]\n"
    "                      write dependency-free C99 for a formula\n"
    "  cache stats|list|clear|gc|why [--cache PATH] [--json]\n"
    "                      inspect and maintain the cache of compiled code\n"
    "  check FILE|DIR... [--json] [--junit FILE] [-j N]\n"
    "                      run the `check` statements of problem files\n"
    "  explain EXPR|FILE:FUNC --at NAME=VALUE,...\n"
    "                      show the forward and backward pass, gate by gate\n"
    "  graph EXPR|FILE:FUNC --at NAME=VALUE,... [-o graph.dot|.svg|.png]\n"
    "                      draw the computational graph with values and gradients\n"
    "\n"
    "  gradc help COMMAND     describes a command (also gradc COMMAND --help)\n"
    "  gradc --version        prints the version\n";

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"eval", cmd_eval}, {"emit", cmd_emit}, {"cache", cmd_cache},
    {"check", cmd_check}, {"explain", cmd_explain}, {"graph", cmd_graph},
};

/* Runs command cmd with argv[0] == cmd; an unknown one is a usage error
 * (for `gradc help CMD`, help says so). */
static int run(const char *cmd, int argc, char **argv, int help)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].run(argc, argv);
    char msg[300];
    snprintf(msg, sizeof msg, "gradc: error: %s '%.200s'\n",
             help ? "no help for the unknown command" : "unknown command", cmd);
    cli_eputs(msg);
    fputs(usage, stderr);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") && argc > 2) {
        /* gradc help COMMAND is gradc COMMAND --help. */
        char *args[] = {argv[2], "--help", NULL};
        return run(argv[2], 2, args, 1);
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        puts("gradc " GRADC_VERSION);
        return 0;
    }
    return run(cmd, argc - 1, argv + 1, 0);
}
