SELECT c.pid, c.name, p.name AS parent FROM processes c JOIN processes p ON p.pid = c.ppid WHERE p.name IN ('nginx', 'httpd', 'caddy') AND c.name = 'sh'
