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
    "       [--wrt NAMES]\n"
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
    "  gradc COMMAND --help   describes a command\n"
    "  gradc --version        prints the version\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        puts("gradc " GRADC_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "eval"))
        return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "emit"))
        return cmd_emit(argc - 1, argv + 1);
    if (!strcmp(cmd, "cache"))
        return cmd_cache(argc - 1, argv + 1);
    if (!strcmp(cmd, "check"))
        return cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "explain"))
        return cmd_explain(argc - 1, argv + 1);
    if (!strcmp(cmd, "graph"))
        return cmd_graph(argc - 1, argv + 1);
    fprintf(stderr, "gradc: error: unknown command '%s'\n%s", cmd, usage);
    return 1;
}
