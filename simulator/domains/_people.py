"""Name pools and the small generators every domain pack shares.

People are drawn culture by culture, so a first name, a last name, a city and a phone
number that belong together come out together. Everything takes a ``random.Random``:
the packs never touch the module-level generator.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from dataclasses import dataclass

__all__ = [
    "CULTURES",
    "Culture",
    "Person",
    "ascii_fold",
    "date_between",
    "email_for",
    "iso",
    "phone_for",
    "pick_person",
]


@dataclass(frozen=True, slots=True)
class Culture:
    """Names, cities and a phone format that plausibly belong to one place."""

    code: str
    country: str
    nationality: str
    phone_prefix: str
    female: tuple[str, ...]
    male: tuple[str, ...]
    last: tuple[str, ...]
    cities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Person:
    first_name: str
    last_name: str
    sex: str
    culture: Culture

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


CULTURES: tuple[Culture, ...] = (
    Culture(
        "us",
        "United States",
        "American",
        "+1",
        ("Emily", "Sarah", "Jessica", "Ashley", "Megan", "Rachel", "Lauren", "Hannah"),
        ("James", "Michael", "Ryan", "Tyler", "Brandon", "Kevin", "Jacob", "Daniel"),
        ("Johnson", "Miller", "Davis", "Thompson", "Walker", "Parker", "Collins", "Reed"),
        ("Chicago", "Austin", "Seattle", "Denver", "Boston", "Portland"),
    ),
    Culture(
        "gb",
        "United Kingdom",
        "British",
        "+44",
        ("Olivia", "Amelia", "Charlotte", "Sophie", "Eleanor", "Imogen", "Harriet", "Lucy"),
        ("Oliver", "Harry", "George", "Alfie", "Callum", "Rhys", "Angus", "Toby"),
        ("Smith", "Clarke", "Hughes", "Whitfield", "Ashworth", "Pemberton", "Fletcher", "Baines"),
        ("London", "Manchester", "Leeds", "Bristol", "Edinburgh", "Cardiff"),
    ),
    Culture(
        "es",
        "Spain",
        "Spanish",
        "+34",
        ("Lucía", "María", "Carmen", "Paula", "Elena", "Marta", "Alba", "Nerea"),
        ("Javier", "Alejandro", "Pablo", "Sergio", "Álvaro", "Diego", "Iker", "Raúl"),
        ("García", "Fernández", "López", "Martínez", "Sánchez", "Romero", "Navarro", "Ortega"),
        ("Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao", "Málaga"),
    ),
    Culture(
        "mx",
        "Mexico",
        "Mexican",
        "+52",
        ("Ximena", "Guadalupe", "Valeria", "Fernanda", "Daniela", "Renata", "Itzel", "Camila"),
        ("Santiago", "Emiliano", "Diego", "Luis", "Jorge", "Mateo", "Rodrigo", "Andrés"),
        ("Hernández", "González", "Ramírez", "Flores", "Cruz", "Morales", "Reyes", "Castillo"),
        ("Ciudad de México", "Guadalajara", "Monterrey", "Puebla", "Mérida", "Oaxaca"),
    ),
    Culture(
        "br",
        "Brazil",
        "Brazilian",
        "+55",
        ("Ana", "Beatriz", "Júlia", "Larissa", "Fernanda", "Gabriela", "Mariana", "Letícia"),
        ("João", "Pedro", "Lucas", "Gabriel", "Rafael", "Thiago", "Bruno", "Felipe"),
        ("Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa", "Almeida", "Carvalho"),
        ("São Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba", "Recife", "Salvador"),
    ),
    Culture(
        "de",
        "Germany",
        "German",
        "+49",
        ("Anna", "Lena", "Katharina", "Johanna", "Greta", "Lea", "Franziska", "Svenja"),
        ("Lukas", "Jonas", "Felix", "Maximilian", "Tobias", "Niklas", "Moritz", "Jannik"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Krüger"),
        ("Berlin", "Hamburg", "München", "Köln", "Leipzig", "Frankfurt"),
    ),
    Culture(
        "fr",
        "France",
        "French",
        "+33",
        ("Camille", "Chloé", "Manon", "Léa", "Inès", "Margaux", "Élodie", "Juliette"),
        ("Louis", "Hugo", "Théo", "Antoine", "Mathis", "Julien", "Baptiste", "Clément"),
        ("Martin", "Bernard", "Dubois", "Moreau", "Laurent", "Lefèvre", "Girard", "Rousseau"),
        ("Paris", "Lyon", "Marseille", "Toulouse", "Nantes", "Bordeaux"),
    ),
    Culture(
        "it",
        "Italy",
        "Italian",
        "+39",
        ("Giulia", "Francesca", "Chiara", "Alessia", "Martina", "Sofia", "Federica", "Elisa"),
        ("Marco", "Luca", "Matteo", "Alessandro", "Lorenzo", "Davide", "Andrea", "Simone"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci"),
        ("Roma", "Milano", "Torino", "Napoli", "Bologna", "Firenze"),
    ),
    Culture(
        "pl",
        "Poland",
        "Polish",
        "+48",
        ("Zofia", "Aleksandra", "Małgorzata", "Katarzyna", "Agnieszka", "Natalia", "Wiktoria", "Ewa"),
        ("Jakub", "Łukasz", "Piotr", "Tomasz", "Krzysztof", "Mateusz", "Paweł", "Michał"),
        ("Kowalski", "Nowak", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński", "Mazur"),
        ("Warszawa", "Kraków", "Gdańsk", "Wrocław", "Poznań", "Łódź"),
    ),
    Culture(
        "ng",
        "Nigeria",
        "Nigerian",
        "+234",
        ("Chiamaka", "Ngozi", "Adaeze", "Funmilayo", "Temitope", "Aisha", "Yetunde", "Ifeoma"),
        ("Chinedu", "Emeka", "Oluwaseun", "Tunde", "Ikenna", "Babajide", "Obinna", "Musa"),
        ("Okafor", "Adeyemi", "Okonkwo", "Balogun", "Eze", "Nwosu", "Adebayo", "Ibrahim"),
        ("Lagos", "Abuja", "Ibadan", "Enugu", "Port Harcourt", "Kano"),
    ),
    Culture(
        "ke",
        "Kenya",
        "Kenyan",
        "+254",
        ("Wanjiru", "Akinyi", "Njeri", "Achieng", "Wambui", "Nyambura", "Chebet", "Atieno"),
        ("Kamau", "Otieno", "Kipchoge", "Mwangi", "Odhiambo", "Kiprono", "Njoroge", "Omondi"),
        ("Mutua", "Wanjala", "Kariuki", "Ochieng", "Korir", "Maina", "Cheruiyot", "Njoroge"),
        ("Nairobi", "Mombasa", "Kisumu", "Nakuru", "Eldoret"),
    ),
    Culture(
        "in",
        "India",
        "Indian",
        "+91",
        ("Priya", "Ananya", "Kavya", "Deepika", "Sneha", "Ishita", "Meera", "Aditi"),
        ("Arjun", "Rahul", "Vikram", "Rohan", "Aditya", "Karthik", "Siddharth", "Nikhil"),
        ("Sharma", "Patel", "Iyer", "Reddy", "Nair", "Gupta", "Mehta", "Banerjee"),
        ("Mumbai", "Bengaluru", "Delhi", "Chennai", "Pune", "Hyderabad"),
    ),
    Culture(
        "cn",
        "China",
        "Chinese",
        "+86",
        ("Li Na", "Xiaoling", "Mei", "Yuqi", "Jing", "Xinyi", "Hui", "Lan"),
        ("Wei", "Jun", "Hao", "Zhiwei", "Yang", "Chen", "Bo", "Tao"),
        ("Wang", "Li", "Zhang", "Liu", "Chen", "Huang", "Zhao", "Wu"),
        ("Shanghai", "Beijing", "Shenzhen", "Chengdu", "Hangzhou", "Guangzhou"),
    ),
    Culture(
        "jp",
        "Japan",
        "Japanese",
        "+81",
        ("Yui", "Haruka", "Sakura", "Aoi", "Misaki", "Natsuki", "Emi", "Rin"),
        ("Haruto", "Takumi", "Kenji", "Daiki", "Sota", "Ren", "Yuto", "Hiroshi"),
        ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura"),
        ("Tokyo", "Osaka", "Kyoto", "Yokohama", "Sapporo", "Fukuoka"),
    ),
    Culture(
        "kr",
        "South Korea",
        "South Korean",
        "+82",
        ("Ji-woo", "Seo-yeon", "Min-ji", "Ha-eun", "Soo-ah", "Yu-na", "Eun-ji", "Da-eun"),
        ("Min-jun", "Seo-jun", "Ji-ho", "Hyun-woo", "Dong-hyun", "Jae-won", "Sung-min", "Tae-yang"),
        ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Yoon", "Han"),
        ("Seoul", "Busan", "Incheon", "Daegu", "Daejeon"),
    ),
    Culture(
        "eg",
        "Egypt",
        "Egyptian",
        "+20",
        ("Nour", "Mariam", "Yasmin", "Salma", "Farida", "Layla", "Hana", "Rania"),
        ("Omar", "Ahmed", "Youssef", "Karim", "Mahmoud", "Tarek", "Hassan", "Khaled"),
        ("Hassan", "Mansour", "Farouk", "El-Sayed", "Abdelrahman", "Fawzy", "Nasser", "Saleh"),
        ("Cairo", "Alexandria", "Giza", "Luxor", "Aswan"),
    ),
    Culture(
        "tr",
        "Turkey",
        "Turkish",
        "+90",
        ("Zeynep", "Elif", "Ayşe", "Defne", "Ebru", "Selin", "Büşra", "Merve"),
        ("Mehmet", "Mustafa", "Emre", "Burak", "Can", "Oğuz", "Kerem", "Serkan"),
        ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Aydın", "Öztürk", "Arslan"),
        ("İstanbul", "Ankara", "İzmir", "Bursa", "Antalya"),
    ),
    Culture(
        "se",
        "Sweden",
        "Swedish",
        "+46",
        ("Astrid", "Elsa", "Maja", "Ingrid", "Linnea", "Saga", "Frida", "Ebba"),
        ("Erik", "Lars", "Oskar", "Anders", "Johan", "Nils", "Gustav", "Axel"),
        ("Andersson", "Johansson", "Lindqvist", "Bergström", "Nyström", "Eriksson", "Holm", "Sjöberg"),
        ("Stockholm", "Göteborg", "Malmö", "Uppsala", "Lund"),
    ),
)

# Letters NFKD does not decompose into an ASCII base letter.
_ASCII = str.maketrans({"ł": "l", "Ł": "L", "ı": "i", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "đ": "d"})
_EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com", "post.example.net")


def ascii_fold(text: str) -> str:
    """``"Łukasz Wiśniewski"`` -> ``"Lukasz Wisniewski"``: for emails and handles."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII))
    return "".join(ch for ch in decomposed if ord(ch) < 128)


def pick_person(rng: random.Random, cultures: tuple[Culture, ...] = CULTURES) -> Person:
    """A person whose first and last names come from the same culture."""
    culture = rng.choice(cultures)
    sex = rng.choice(("female", "male"))
    first = rng.choice(culture.female if sex == "female" else culture.male)
    return Person(first, rng.choice(culture.last), sex, culture)


def email_for(rng: random.Random, person: Person, taken: set[str]) -> str:
    """An address derived from the person's name, unique within ``taken`` (which it extends)."""

    def handle(text: str) -> str:
        return "".join(ch for ch in ascii_fold(text).lower() if ch.isalnum())

    first, last = handle(person.first_name), handle(person.last_name)
    style = rng.randrange(4)
    local = (f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}", f"{last}.{first}")[style]
    domain = rng.choice(_EMAIL_DOMAINS)
    email = f"{local}@{domain}"
    n = 2
    while email in taken:
        email = f"{local}{n}@{domain}"
        n += 1
    taken.add(email)
    return email


def phone_for(rng: random.Random, prefix: str, taken: set[str]) -> str:
    """A phone number with a country prefix, unique within ``taken`` (which it extends)."""
    while True:
        if prefix == "+1":
            number = f"+1 {rng.randint(201, 989)}-555-{rng.randint(100, 199):04d}"
        elif prefix == "+44":
            number = f"+44 7{rng.randint(100, 999)} {rng.randint(100000, 999999)}"
        else:
            number = f"{prefix} {rng.randint(200, 989)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        if number not in taken:
            taken.add(number)
            return number


def iso(day: dt.date) -> str:
    return day.isoformat()


def date_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    """A uniformly drawn day in ``[start, end]``."""
    return start + dt.timedelta(days=rng.randint(0, (end - start).days))
