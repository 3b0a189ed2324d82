/* placeholder until the collector lands */
#include "cli.h"
#include <stdio.h>
int cmd_send(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "strata send: not built yet\n"); return ST_EXIT_ERROR; }
