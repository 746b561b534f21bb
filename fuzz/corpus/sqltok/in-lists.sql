SELECT pid, name FROM processes WHERE name IN ('a', 'b', 'c') AND uid NOT IN (0, -1, +2) OR x IN (1, 2)
