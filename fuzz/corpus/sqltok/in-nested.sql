SELECT pid FROM processes p WHERE f(p.a IN ('x' /* ) */, 'y', 'z' -- )
), 1) IN (1, 2, 3, 4) AND b IN (SELECT 1)
