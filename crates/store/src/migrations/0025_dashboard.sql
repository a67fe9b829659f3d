-- The safeguarding dashboard counts a school's activity per device and time
-- (GET /safeguarding/summary): with the device and time in one index beside
-- the school, each visible device's period is one range of this index and
-- the count needs no table row (a covering index). Measured on 300,000 rows:
-- 6 times faster for every device, 12 times for one room of 30.
CREATE INDEX activity_school_device_at ON activity(school_id, device_id, at);
