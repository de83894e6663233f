// Dashboard logic (filled by the dashboard work).
