/* test_cli_conventions.c — what gradc shares with every Unix tool (cli/main.c,
 * cli/input.c): `gradc help COMMAND`, the documented exit codes, and colour
 * only on a terminal and never with NO_COLOR. A terminal is made with
 * script(1), which runs a command on a fresh pseudo-terminal. */
#include "support.h"
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "gradc.h"

Test(conventions, help_command_is_the_commands_own_help)
{
    const char *cmds[] = {"eval", "emit", "cache", "check", "explain", "graph"};
    for (int i = 0; i < 6; i++) {
        char *a, *b;
        cr_expect_eq(support_shell(&a, "%s help %s", GRADC_BIN, cmds[i]), 0);
        cr_expect_eq(support_shell(&b, "%s %s --help", GRADC_BIN, cmds[i]), 0);
        cr_expect_str_eq(a, b, "gradc help %s", cmds[i]);
        char head[64];
        snprintf(head, sizeof head, "usage: gradc %s", cmds[i]);
        cr_expect(!strncmp(a, head, strlen(head)), "%s", a);
        free(a);
        free(b);
    }
}

Test(conventions, help_lists_every_command_and_exit_codes_are_documented)
{
    char *s;
    cr_expect_eq(support_shell(&s, "%s --help", GRADC_BIN), 0);
    cr_expect(strstr(s, "gradc help COMMAND"));
    cr_expect(strstr(s, "--float"));
    free(s);
    cr_expect_eq(support_shell(&s, "%s help 2>&1", GRADC_BIN), 0);
    cr_expect(strstr(s, "usage: gradc COMMAND"));
    free(s);
    /* Usage errors and unknown commands: 1 (docs/cli.md). */
    cr_expect_eq(support_shell(&s, "%s help nope 2>&1", GRADC_BIN), 1);
    cr_expect(strstr(s, "gradc: error: no help for the unknown command 'nope'\n"), "%s", s);
    free(s);
    cr_expect_eq(support_shell(&s, "%s frobnicate 2>&1", GRADC_BIN), 1);
    cr_expect(strstr(s, "gradc: error: unknown command 'frobnicate'\n"), "%s", s);
    free(s);
    cr_expect_eq(support_shell(&s, "%s 2>&1", GRADC_BIN), 1);
    free(s);
    cr_expect_eq(support_shell(&s, "%s --version", GRADC_BIN), 0);
    cr_expect_str_eq(s, "gradc " GRADC_VERSION "\n");
    free(s);
    /* A formula that does not compile: 1. */
    cr_expect_eq(support_shell(&s, "%s emit -e 'x+' 2>&1", GRADC_BIN), 1);
    free(s);
    /* The page that documents them says so. */
    char *doc = slurp(GRADC_SOURCE_DIR "/docs/cli.md");
    cr_expect(strstr(doc, "## Exit status"));
    cr_expect(strstr(doc, "`gradc help COMMAND`"));
    free(doc);
}

static int have_script(void)
{
    return system("script --version >/dev/null 2>&1") == 0;
}

/* The error of `gradc eval 'x+'`, run on a pseudo-terminal with env. */
static char *on_terminal(const char *env)
{
    char *s;
    support_shell(&s, "env %s TERM=xterm script -qec \"%s eval 'x+' --at x=1 --no-cache\" /dev/null", env,
            GRADC_BIN);
    return s;
}

Test(conventions, colour_only_on_a_terminal_and_never_with_no_color)
{
    if (!have_script())
        cr_skip_test("script(1) is not installed: no pseudo-terminal to test colour on");
    char *s = on_terminal("-u NO_COLOR");
    cr_expect(strstr(s, "<expr>:1:3: \033[1;31merror:\033[0m unexpected end of line"), "%s", s);
    cr_expect(!strstr(s, "| \033"), "the source line is not coloured: %s", s);
    free(s);
    s = on_terminal("NO_COLOR=1");
    cr_expect(strstr(s, "<expr>:1:3: error: unexpected end of line"), "%s", s);
    cr_expect(!strchr(s, '\033'), "NO_COLOR: %s", s);
    free(s);
    /* An empty NO_COLOR does not count (no-color.org). */
    s = on_terminal("NO_COLOR=");
    cr_expect(strstr(s, "\033[1;31merror:"), "%s", s);
    free(s);
    /* Notes of usage errors too. */
    support_shell(&s, "env -u NO_COLOR TERM=xterm script -qec \"%s emit --bogus\" /dev/null", GRADC_BIN);
    cr_expect(strstr(s, "gradc: \033[1;36mnote:\033[0m see 'gradc emit --help'"), "%s", s);
    free(s);
}

Test(conventions, no_colour_when_piped)
{
    char *s;
    cr_expect_eq(support_shell(&s, "env -u NO_COLOR TERM=xterm %s eval 'x+' --at x=1 --no-cache 2>&1",
                         GRADC_BIN), 1);
    cr_expect(strstr(s, "<expr>:1:3: error: unexpected end of line"), "%s", s);
    cr_expect(!strchr(s, '\033'), "%s", s);
    free(s);
}
