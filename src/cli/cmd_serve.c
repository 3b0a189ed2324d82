/* placeholder until the collector lands */
#include "cli.h"
#include <stdio.h>
int cmd_serve(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "strata serve: not built yet\n"); return ST_EXIT_ERROR; }
