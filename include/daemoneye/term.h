/*
 * term.h — what output may do on a terminal: colour (NO_COLOR, TERM=dumb
 * and non-terminals honoured) and the width to fit tables to.
 */
#ifndef DAEMONEYE_TERM_H
#define DAEMONEYE_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Whether colour may be used on f: a terminal, NO_COLOR unset or empty, TERM set and not dumb. */
bool de_use_color(FILE *f);

/*
 * Columns to fit output on fd to: $COLUMNS when it is a number from 20 to
 * 10000 (the user's word wins), else the terminal's width when fd is a
 * terminal, else 0 (not a terminal: do not cut).
 */
size_t de_term_width(int fd);

#endif
